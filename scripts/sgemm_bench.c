// sgemm_bench times OpenBLAS's single-precision matrix product on square
// row-major matrices, for scripts/bench-blas.sh: it prints the best
// GFLOP/s of a few timed runs of at least half a second each. The number
// of threads and the kernel are OpenBLAS's (OPENBLAS_NUM_THREADS,
// OPENBLAS_CORETYPE), so the script can try each.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

// The CBLAS declaration, written out so that no header is needed (Debian's
// libopenblas0 ships the library alone).
enum { RowMajor = 101, NoTrans = 111 };
void cblas_sgemm(int order, int transa, int transb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
char *openblas_get_corename(void);

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: sgemm_bench N\n");
		return 2;
	}
	int n = atoi(argv[1]);
	if (n < 1 || n > 16384) {
		fprintf(stderr, "sgemm_bench: N must be in [1, 16384]\n");
		return 2;
	}
	size_t nn = (size_t)n * n;
	float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
	if (!a || !b || !c) {
		fprintf(stderr, "sgemm_bench: out of memory\n");
		return 1;
	}
	unsigned s = 1;
	for (size_t i = 0; i < nn; i++) {
		s = s * 1664525u + 1013904223u;
		a[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
		s = s * 1664525u + 1013904223u;
		b[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
	}
	cblas_sgemm(RowMajor, NoTrans, NoTrans, n, n, n, 1, a, n, b, n, 0, c, n); // warm-up
	double best = 0;
	for (int run = 0; run < 3; run++) {
		int reps = 0;
		double t0 = now(), t;
		do {
			cblas_sgemm(RowMajor, NoTrans, NoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
			reps++;
			t = now() - t0;
		} while (t < 0.5);
		double gflops = 2.0 * n * n * (double)n * reps / t / 1e9;
		if (gflops > best) best = gflops;
	}
	printf("%.1f %s\n", best, openblas_get_corename());
	return 0;
}
