/* asynctrace profile: `record` with on-CPU sampling on (99 Hz unless -F
 * says otherwise): the polls and the samples of the same run in one
 * trace, so that each sample knows the task and the futures running on
 * its thread at that instant (export --format folded, report). */
#include "cmd/cmd.h"
#include "cmd/record.h"

#define PROFILE_DEFAULT_HZ 99

int cmd_profile(int argc, char **argv)
{
	return record_main(argc, argv, PROFILE_DEFAULT_HZ);
}
