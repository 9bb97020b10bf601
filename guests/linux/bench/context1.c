/* context1: two processes pass an incrementing counter back and forth
 * through two pipes; one loop = one round trip (two context switches). */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	double seconds = bench_seconds(argc, argv);
	int to_child[2], to_parent[2];
	unsigned long long sent = 0, got;
	pid_t child;
	double t0;

	if (pipe(to_child) || pipe(to_parent))
		bench_fail("context1", "pipe");
	child = fork();
	if (child < 0)
		bench_fail("context1", "fork");
	if (child == 0) {
		unsigned long long v;
		close(to_child[1]);
		close(to_parent[0]);
		for (;;) {
			if (read(to_child[0], &v, sizeof(v)) != sizeof(v))
				_exit(0);
			v++;
			if (write(to_parent[1], &v, sizeof(v)) != sizeof(v))
				_exit(0);
		}
	}
	close(to_child[0]);
	close(to_parent[1]);
	t0 = bench_now();
	bench_start(seconds);
	while (!bench_done) {
		if (write(to_child[1], &sent, sizeof(sent)) != sizeof(sent))
			break;
		if (read(to_parent[0], &got, sizeof(got)) != sizeof(got))
			break;
		if (got != sent + 1) {
			fprintf(stderr, "context1: sent %llu, got %llu back\n", sent, got);
			return 1;
		}
		sent = got;
	}
	bench_report("context1", sent, bench_now() - t0);
	close(to_child[1]);
	waitpid(child, NULL, 0);
	return 0;
}
