/* schedule_dump — prints `t lr beta1` for t = 0..TOTAL-1 of a schedule, for
 * comparison with torch.optim.lr_scheduler (tests/reference/schedules.py).
 * usage: schedule_dump KIND TOTAL [key=value ...] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/schedule.h"

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: schedule_dump cosine|onecycle|constant TOTAL [key=value ...]\n");
    return 2;
  }
  struct schedule s = {.lr = 1e-3,
                       .beta1 = 0.9,
                       .max_lr = 1e-3,
                       .pct_start = 0.3,
                       .div_factor = 25,
                       .final_div_factor = 1e4,
                       .base_momentum = 0.85,
                       .max_momentum = 0.95,
                       .cycle_momentum = 1};
  s.kind = strcmp(argv[1], "cosine") == 0     ? SCHED_COSINE
           : strcmp(argv[1], "onecycle") == 0 ? SCHED_ONECYCLE
                                              : SCHED_CONSTANT;
  s.total_steps = atol(argv[2]);
  for (int i = 3; i < argc; i++) {
    char key[64];
    double v;
    char word[16];
    if (sscanf(argv[i], "anneal=%15s", word) == 1) {
      s.anneal_linear = strcmp(word, "linear") == 0;
      continue;
    }
    if (sscanf(argv[i], "%63[^=]=%lf", key, &v) != 2) {
      fprintf(stderr, "schedule_dump: bad argument '%s'\n", argv[i]);
      return 2;
    }
    if (!strcmp(key, "lr"))
      s.lr = v;
    else if (!strcmp(key, "max_lr"))
      s.max_lr = v;
    else if (!strcmp(key, "pct_start"))
      s.pct_start = v;
    else if (!strcmp(key, "div_factor"))
      s.div_factor = v;
    else if (!strcmp(key, "final_div_factor"))
      s.final_div_factor = v;
    else if (!strcmp(key, "base_momentum"))
      s.base_momentum = v;
    else if (!strcmp(key, "max_momentum"))
      s.max_momentum = v;
    else if (!strcmp(key, "cycle_momentum"))
      s.cycle_momentum = v != 0;
    else if (!strcmp(key, "beta1"))
      s.beta1 = v;
    else if (!strcmp(key, "eta_min"))
      s.eta_min = v;
    else {
      fprintf(stderr, "schedule_dump: unknown key '%s'\n", key);
      return 2;
    }
  }
  for (long t = 0; t < s.total_steps; t++) {
    double lr, beta1;
    schedule_at(&s, t, &lr, &beta1);
    printf("%ld %.17g %.17g\n", t, lr, beta1);
  }
  return 0;
}
