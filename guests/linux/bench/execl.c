/* execl: the process replaces itself with a new image of this program,
 * passing on the loop count and the deadline, until the time is up.
 *     execl [SECONDS]                       (start)
 *     execl SECONDS LOOPS START DEADLINE    (re-executed) */
#include "bench.h"
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long long loops;
	double start, deadline, now;
	char a_loops[32], a_start[32], a_deadline[32];

	if (argc == 5) {
		loops = strtoull(argv[2], NULL, 10);
		start = strtod(argv[3], NULL);
		deadline = strtod(argv[4], NULL);
	} else {
		loops = 0;
		start = bench_now();
		deadline = start + bench_seconds(argc, argv);
		bench_window();
	}
	now = bench_now();
	if (now >= deadline) {
		bench_report("execl", loops, now - start);
		return 0;
	}
	snprintf(a_loops, sizeof(a_loops), "%llu", loops + 1);
	snprintf(a_start, sizeof(a_start), "%.9f", start);
	snprintf(a_deadline, sizeof(a_deadline), "%.9f", deadline);
	execl("/proc/self/exe", "execl", argc > 1 ? argv[1] : "2", a_loops, a_start, a_deadline, (char *)NULL);
	bench_fail("execl", "execl /proc/self/exe");
	return 1;
}
