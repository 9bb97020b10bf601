/* fcopy: copy a 2000 KiB file in 1 KiB blocks, over and over, on tmpfs
 * (UnixBench's "File Copy 1024 bufsize 2000 maxblocks" shape). One loop =
 * one KiB copied, so loops/s is KiB/s. Files live in $BENCH_DIR or /tmp. */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>

#define BLOCK 1024
#define BLOCKS 2000

int main(int argc, char **argv)
{
	double seconds = bench_seconds(argc, argv);
	const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "/tmp";
	char src[256], dst[256], buf[BLOCK];
	unsigned long long loops = 0;
	int in, out, i;
	double t0;

	snprintf(src, sizeof(src), "%s/fcopy-src.%d", dir, (int)getpid());
	snprintf(dst, sizeof(dst), "%s/fcopy-dst.%d", dir, (int)getpid());
	in = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
	out = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || out < 0)
		bench_fail("fcopy", "open");
	for (i = 0; i < BLOCK; i++)
		buf[i] = (char)i;
	for (i = 0; i < BLOCKS; i++)
		if (write(in, buf, BLOCK) != BLOCK)
			bench_fail("fcopy", "write");
	t0 = bench_now();
	bench_start(seconds);
	while (!bench_done) {
		lseek(in, 0, SEEK_SET);
		lseek(out, 0, SEEK_SET);
		for (i = 0; i < BLOCKS && !bench_done; i++) {
			if (read(in, buf, BLOCK) != BLOCK)
				bench_fail("fcopy", "read");
			if (write(out, buf, BLOCK) != BLOCK)
				bench_fail("fcopy", "write");
			loops++;
		}
	}
	bench_report("fcopy", loops, bench_now() - t0);
	unlink(src);
	unlink(dst);
	return 0;
}
