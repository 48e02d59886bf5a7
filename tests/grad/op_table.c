/* op_table.c — every op of kernels/ops.h has a CPU and a CUDA implementation:
 * walks both backends' tables (the CUDA one in the SIMT emulator) slot by
 * slot and fails for any NULL entry.
 *
 * struct ops_backend is its name and state followed by function pointers
 * only, so the
 * table is walked as an array of pointer slots and an op added to ops.h is
 * checked without this file changing. The op names, which tests/grad/
 * tests.cmake parses from ops.h and passes as arguments, only label the
 * slots; their count must equal the number of slots, which also checks that
 * parser (op_coverage.sh greps the tests for the same names). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/ops.h"
#include "tests/testutil.h"

typedef void (*slot_fn)(void);

enum { FIRST_SLOT = offsetof(struct ops_backend, alloc) };

/* Function-pointer slots from `alloc` to the end of the table. */
static size_t slot_count(void) {
  return (sizeof(struct ops_backend) - FIRST_SLOT) / sizeof(slot_fn);
}

static slot_fn slot(const struct ops_backend *t, size_t i) {
  slot_fn f;
  memcpy(&f, (const char *)t + FIRST_SLOT + i * sizeof f, sizeof f);
  return f;
}

/* ops.h's capabilities a backend may lack (NULL): CUDA Graphs. The cuda
 * backend must have them all the same. */
static int optional_on_cpu(const char *op) { return strncmp(op, "graph_", 6) == 0; }

static void check_table(const struct ops_backend *t, const char *want_name, char **ops,
                        size_t nops) {
  TU_CHECK(t != NULL);
  if (!t) return;
  TU_CHECK(t->name != NULL && strcmp(t->name, want_name) == 0);
  for (size_t i = 0; i < nops; i++)
    if (!slot(t, i) && !(strcmp(want_name, "cpu") == 0 && optional_on_cpu(ops[i]))) {
      fprintf(stderr, "FAIL %s backend: no implementation of %s\n", want_name, ops[i]);
      tu_failures++;
    }
}

int main(int argc, char **argv) {
  const size_t nops = (size_t)argc - 1, slots = slot_count();
  char **ops = argv + 1;
  /* Only pointers after `name` and `state`: no padding, nothing else. */
  TU_CHECK((sizeof(struct ops_backend) - FIRST_SLOT) % sizeof(slot_fn) == 0);
  TU_CHECK(FIRST_SLOT == sizeof(const char *) + sizeof(const void *));
  if (nops != slots) {
    fprintf(stderr, "FAIL: %zu op names parsed from ops.h, struct ops_backend has %zu slots\n",
            nops, slots);
    TU_DONE();
  }
  TU_CHECK(strcmp(ops[0], "alloc") == 0);
  char msg[256];
  if (cuda_backend_probe(msg, sizeof msg)) {
    fprintf(stderr, "the emulated device does not answer: %s\n", msg);
    return 1;
  }
  check_table(ops_cpu(), "cpu", ops, nops);
  const struct ops_backend *cuda = cuda_backend_open(0, msg, sizeof msg);
  if (!cuda) fprintf(stderr, "FAIL: %s\n", msg);
  check_table(cuda, "cuda", ops, nops);
  TU_CHECK(cuda && cuda->state != NULL && ops_cpu()->state == NULL);
  cuda_backend_close(cuda);
  if (!tu_failures)
    printf("%zu ops, each implemented by cpu and cuda (CUDA Graphs by cuda alone)\n", nops);
  TU_DONE();
}
