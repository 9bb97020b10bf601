/* whets: a Whetstone-like floating-point loop (our own code). One loop runs
 * the modules of the published Whetstone definition (Curnow & Wichmann,
 * 1976) with their relative counts for one million Whetstone instructions
 * (I = 10): array elements, arrays as parameters, conditional jumps,
 * integer arithmetic, trigonometric functions, procedure calls, array
 * references and standard functions. So loops/s approximates MWIPS. */
#include "bench.h"
#include <math.h>

static double t = 0.499975, t1 = 0.50025, t2 = 2.0;
static double e1[4];
static int j, k, l;

__attribute__((noinline)) static void pa(double *e)
{
	for (int n = 0; n < 6; n++) {
		e[0] = (e[0] + e[1] + e[2] - e[3]) * t;
		e[1] = (e[0] + e[1] - e[2] + e[3]) * t;
		e[2] = (e[0] - e[1] + e[2] + e[3]) * t;
		e[3] = (-e[0] + e[1] + e[2] + e[3]) / t2;
	}
}

__attribute__((noinline)) static void p3(double x, double y, double *z)
{
	x = t * (x + y);
	y = t * (x + y);
	*z = (x + y) / t2;
}

__attribute__((noinline)) static void p0(void)
{
	e1[j] = e1[k];
	e1[k] = e1[l];
	e1[l] = e1[j];
}

static void whetstone_pass(void)
{
	const int I = 10;
	double x, y, z, x1, x2, x3, x4;
	int i;

	/* module 2: array elements */
	e1[0] = 1.0; e1[1] = -1.0; e1[2] = -1.0; e1[3] = -1.0;
	for (i = 0; i < 12 * I; i++) {
		e1[0] = (e1[0] + e1[1] + e1[2] - e1[3]) * t;
		e1[1] = (e1[0] + e1[1] - e1[2] + e1[3]) * t;
		e1[2] = (e1[0] - e1[1] + e1[2] + e1[3]) * t;
		e1[3] = (-e1[0] + e1[1] + e1[2] + e1[3]) * t;
	}
	/* module 3: array as parameter */
	for (i = 0; i < 14 * I; i++)
		pa(e1);
	/* module 4: conditional jumps */
	j = 1;
	for (i = 0; i < 345 * I; i++) {
		j = j == 1 ? 2 : 3;
		j = j > 2 ? 0 : 1;
		j = j < 1 ? 1 : 0;
	}
	/* module 6: integer arithmetic */
	j = 1; k = 2; l = 3;
	for (i = 0; i < 210 * I; i++) {
		j = j * (k - j) * (l - k);
		k = l * k - (l - j) * k;
		l = (l - k) * (k + j);
		e1[l - 2] = j + k + l;
		e1[k - 2] = j * k * l;
	}
	/* module 7: trigonometric functions */
	x = 0.5; y = 0.5;
	for (i = 0; i < 32 * I; i++) {
		x = t * atan(t2 * sin(x) * cos(x) / (cos(x + y) + cos(x - y) - 1.0));
		y = t * atan(t2 * sin(y) * cos(y) / (cos(x + y) + cos(x - y) - 1.0));
	}
	/* module 8: procedure calls */
	x = 1.0; y = 1.0; z = 1.0;
	for (i = 0; i < 899 * I; i++)
		p3(x, y, &z);
	/* module 9: array references */
	j = 0; k = 1; l = 2;
	e1[0] = 1.0; e1[1] = 2.0; e1[2] = 3.0;
	for (i = 0; i < 616 * I; i++)
		p0();
	/* module 11: standard functions */
	x = 0.75;
	for (i = 0; i < 93 * I; i++)
		x = sqrt(exp(log(x) / t1));
	x1 = x; x2 = y; x3 = z; x4 = e1[0];
	(void)x1; (void)x2; (void)x3; (void)x4;
	if (x + y + z + e1[0] == 12345.678)
		puts("");
}

int main(int argc, char **argv)
{
	BENCH_LOOP("whets", bench_seconds(argc, argv), whetstone_pass());
	return 0;
}
