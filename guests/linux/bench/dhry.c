/* dhry: a Dhrystone-like integer loop (our own code): record copies and
 * field updates through pointers, enumerations, a bounded string compare
 * and copy, small array updates and procedure calls, in roughly the mix
 * the Dhrystone 2 definition describes. One loop = one pass of the mix.
 * Its absolute score is only indicative; the ratio between modes is what
 * hv-trace bench reports. */
#include "bench.h"

enum colour { RED, GREEN, BLUE, WHITE, BLACK };

struct rec {
	struct rec *next;
	enum colour colour;
	int number;
	int value;
	char text[31];
};

static struct rec glob_a, glob_b;
static int glob_int, glob_arr[50], glob_mat[50][50];
static char glob_ch;
static char str_one[31] = "HV-TRACE BENCH, 1'ST STRING....";
static char str_two[31];

__attribute__((noinline)) static enum colour pick(char a, char b)
{
	return a == b ? GREEN : RED;
}

__attribute__((noinline)) static int same_text(const char *a, const char *b)
{
	int i = 2;
	while (i <= 2) {
		if (pick(a[i], b[i + 1]) == RED)
			i++;
	}
	for (i = 0; i < 30; i++)
		if (a[i] != b[i])
			return a[i] > b[i];
	return 0;
}

__attribute__((noinline)) static void update(struct rec *r)
{
	struct rec *n = r->next;
	*n = *r;
	r->number = 5;
	n->number = r->number;
	n->next = r->next;
	if (n->colour == RED) {
		n->number = 6;
		n->colour = r->colour == WHITE ? BLACK : BLUE;
		n->value = glob_int + 12;
	} else {
		*r = *n;
	}
}

__attribute__((noinline)) static void arrays(int *a, int (*m)[50], int x, int y)
{
	int k = x + 5, i;
	a[k] = y;
	a[k + 1] = a[k];
	a[k + 30] = k;
	for (i = k; i <= k + 1; i++)
		m[k][i] = k;
	m[k][k - 1] += 1;
	m[k + 20][k] = a[k];
	glob_int = 5;
}

__attribute__((noinline)) static int add_mul(int a, int b)
{
	return a * b + (a ^ b) - (b >> 1);
}

int main(int argc, char **argv)
{
	double seconds = bench_seconds(argc, argv);
	unsigned long long loops = 0;
	double t0;

	glob_a.next = &glob_b;
	glob_a.colour = GREEN;
	glob_a.number = 40;
	memcpy(glob_a.text, "HV-TRACE BENCH, SOME STRING....", 31);
	t0 = bench_now();
	bench_start(seconds);
	while (!bench_done) {
		int one = 2, two = 3, three, i;
		memcpy(str_two, "HV-TRACE BENCH, 2'ND STRING....", 31);
		glob_ch = 'A';
		three = add_mul(one, two);
		if (!same_text(str_one, str_two))
			glob_int = three;
		for (i = 'A'; i <= glob_ch + 1; i++)
			if (pick((char)i, 'C') == GREEN)
				glob_a.colour = BLUE;
		while (one < two) {
			three = 5 * one - two;
			one++;
		}
		arrays(glob_arr, glob_mat, one, three);
		update(&glob_a);
		two = two * one;
		one = two / three;
		two = 7 * (two - three) - one;
		glob_int += one + two + (int)glob_a.colour;
		loops++;
	}
	bench_report("dhry", loops, bench_now() - t0);
	return glob_int == 0x7fffffff;
}
