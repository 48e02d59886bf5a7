/* schedule.c — CosineAnnealingLR and OneCycleLR (torch 1.13 semantics). */
#include "optim/schedule.h"

#include <math.h>

static double anneal(const struct schedule *s, double start, double end, double pct) {
  if (s->anneal_linear) return (end - start) * pct + start;
  return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

/* OneCycleLR: phase 1 ends at float(pct_start * T) - 1, phase 2 at T - 1. */
static void onecycle_at(const struct schedule *s, long t, double *lr, double *beta1) {
  double initial = s->max_lr / s->div_factor, min_lr = initial / s->final_div_factor;
  double end1 = s->pct_start * (double)s->total_steps - 1.0;
  double end2 = (double)s->total_steps - 1.0;
  double step = (double)t, pct;
  if (step <= end1) {
    pct = step / end1;
    *lr = anneal(s, initial, s->max_lr, pct);
    *beta1 = anneal(s, s->max_momentum, s->base_momentum, pct);
  } else {
    pct = (step - end1) / (end2 - end1);
    *lr = anneal(s, s->max_lr, min_lr, pct);
    *beta1 = anneal(s, s->base_momentum, s->max_momentum, pct);
  }
  if (!s->cycle_momentum) *beta1 = s->beta1;
}

void schedule_at(const struct schedule *s, long t, double *lr, double *beta1) {
  *beta1 = s->beta1;
  switch (s->kind) {
  case SCHED_CONSTANT:
    *lr = s->lr;
    break;
  case SCHED_COSINE:
    *lr = s->eta_min +
          (s->lr - s->eta_min) * (1.0 + cos(M_PI * (double)t / (double)s->total_steps)) / 2.0;
    break;
  case SCHED_ONECYCLE:
    onecycle_at(s, t, lr, beta1);
    break;
  }
  if (t < s->warmup_steps) *lr *= (double)(t + 1) / (double)s->warmup_steps;
}
