/* syscall: a mix of cheap system calls per loop: close(dup()), getpid,
 * getuid, umask. Called through syscall() so no libc cache can skip one. */
#include "bench.h"
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	BENCH_LOOP("syscall", bench_seconds(argc, argv), {
		close(dup(0));
		syscall(SYS_getpid);
		syscall(SYS_getuid);
		umask(022);
	});
	return 0;
}
