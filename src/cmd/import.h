/* `asynctrace import FORMAT ...`: one file per format (import_zcore.c,
 * import_uftrace.c, import_cat.c), sharing the ending here. */
#ifndef ASYNCTRACE_CMD_IMPORT_H
#define ASYNCTRACE_CMD_IMPORT_H

#include "import/import.h"

/* argv[0] = the format's name ("zcore", ...). */
int cmd_import_zcore(int argc, char **argv);
int cmd_import_uftrace(int argc, char **argv);
int cmd_import_cat(int argc, char **argv);

/* Writes the trace and says what was imported, on stderr:
 * "import zcore: 892 records (449 entries, 443 exits), 443 polls, ..."
 * and the unknown lines with their numbers. Returns the exit status. */
int import_finish(const char *format, struct import_builder *b, const char *out,
		  const struct import_unknown *unknown, const char *input);

/* "import zcore: LOG: 3 lines not understood and skipped (lines 7, 9, 12)",
 * when there are any. */
void import_say_unknown(const char *format, const struct import_unknown *unknown, const char *input);

#endif
