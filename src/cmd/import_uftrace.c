/* asynctrace import uftrace (placeholder until its reader lands). */
#include "cmd/cmd.h"
#include "cmd/import.h"
#include "util/error.h"

int cmd_import_uftrace(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	report_error("import uftrace: not built yet");
	return 1;
}
