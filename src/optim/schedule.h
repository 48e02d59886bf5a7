/* schedule.h — learning-rate (and Adam beta1) schedules with
 * torch.optim.lr_scheduler semantics, as pure functions of the step. */
#ifndef CTRAIN_SCHEDULE_H
#define CTRAIN_SCHEDULE_H

enum sched_kind { SCHED_CONSTANT, SCHED_COSINE, SCHED_ONECYCLE };

struct schedule {
  enum sched_kind kind;
  long total_steps; /* T_max (cosine) or total_steps (OneCycle) */
  double lr;        /* base lr (constant, cosine) */
  double eta_min;   /* cosine floor */
  double beta1;     /* Adam beta1 when momentum is not cycled */
  /* OneCycle */
  double max_lr, pct_start, div_factor, final_div_factor;
  double base_momentum, max_momentum;
  int anneal_linear, cycle_momentum;
  long warmup_steps; /* linear warm-up factor (t+1)/warmup on top of any kind */
};

/* lr and beta1 to use for optimizer step t (0-based), as torch's scheduler
 * would have set them after t calls to scheduler.step(). */
void schedule_at(const struct schedule *s, long t, double *lr, double *beta1);

#endif
