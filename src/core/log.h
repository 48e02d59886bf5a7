/* log.h — the logger, the one piece of global mutable state: it knows the
 * rank so that only rank 0 speaks, except for errors. */
#ifndef CTRAIN_LOG_H
#define CTRAIN_LOG_H

void log_set_rank(int rank);
/* Rank 0 only, to stdout. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Any rank, to stderr, prefixed with "ctrain: " (and the rank when > 0). */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
