/* Shared harness of the hv-trace guest benchmarks: a fixed-duration loop,
 * UnixBench-style, ending in one parseable line:
 *     <test>: <loops> loops in <seconds> s: <rate> loops/s
 * Usage of every program: PROG [SECONDS] (default 2, fractions allowed). */
#ifndef HVBENCH_H
#define HVBENCH_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t bench_done;

/* Called once where the timed part starts (bench_start) and once where it
 * ends (bench_report). The Makefile links this function alone at
 * 0x4000000, an address no other program of the guest runs, so that
 * `hv-trace profile-kernel` finds the two calls in QEMU's exec log by
 * address and counts only what runs between them. */
__attribute__((noinline, section(".bench_window"))) static void bench_window(void)
{
	__asm__ volatile("" ::: "memory");
}

static inline void bench_alarm(int sig)
{
	(void)sig;
	bench_done = 1;
}

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The duration asked for on the command line. */
static inline double bench_seconds(int argc, char **argv)
{
	double s = argc > 1 ? strtod(argv[1], NULL) : 2.0;
	if (!(s > 0.0 && s < 3600.0)) {
		fprintf(stderr, "%s: the duration must be 0 < SECONDS < 3600, not %s\n", argv[0], argv[1]);
		exit(2);
	}
	return s;
}

/* Arms the end-of-run timer. No SA_RESTART: a blocked read or wait
 * returns EINTR when the time is up. */
static inline void bench_start(double seconds)
{
	struct sigaction sa;
	struct itimerval it;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bench_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)seconds;
	it.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
	if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
		it.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &it, NULL);
	bench_window();
}

static inline void bench_report(const char *name, unsigned long long loops, double elapsed)
{
	bench_window();
	printf("%s: %llu loops in %.3f s: %.1f loops/s\n", name, loops, elapsed,
	       elapsed > 0 ? (double)loops / elapsed : 0.0);
	fflush(stdout);
}

/* Runs BODY until the time is up and reports one loop per pass. */
#define BENCH_LOOP(NAME, SECONDS, BODY)                                   \
	do {                                                              \
		unsigned long long loops_ = 0;                            \
		double t0_ = bench_now();                                 \
		bench_start(SECONDS);                                     \
		while (!bench_done) {                                     \
			BODY;                                             \
			loops_++;                                         \
		}                                                         \
		bench_report(NAME, loops_, bench_now() - t0_);            \
	} while (0)

static inline void bench_fail(const char *name, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", name, what, strerror(errno));
	exit(1);
}

#endif
