/* spawn: fork a child that exits at once; the parent waits for it. */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	BENCH_LOOP("spawn", bench_seconds(argc, argv), {
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid < 0)
			bench_fail("spawn", "fork");
		while (waitpid(pid, NULL, 0) < 0) {
			if (errno != EINTR)
				bench_fail("spawn", "waitpid");
		}
	});
	return 0;
}
