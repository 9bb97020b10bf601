/* pipe: one process writes 512 bytes into a pipe and reads them back. */
#include "bench.h"
#include <unistd.h>

int main(int argc, char **argv)
{
	double seconds = bench_seconds(argc, argv);
	char buf[512];
	int fd[2];

	memset(buf, 'p', sizeof(buf));
	if (pipe(fd))
		bench_fail("pipe", "pipe");
	BENCH_LOOP("pipe", seconds, {
		if (write(fd[1], buf, sizeof(buf)) != sizeof(buf))
			bench_fail("pipe", "write");
		if (read(fd[0], buf, sizeof(buf)) != sizeof(buf))
			bench_fail("pipe", "read");
	});
	return 0;
}
