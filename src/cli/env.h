/* env.h — process-wide library settings that must be in the environment
 * before the libraries load. */
#ifndef CTRAIN_ENV_H
#define CTRAIN_ENV_H

/* Sets the settings that are not already set and re-executes the binary
 * once (execv of /proc/self/exe with argv); returns when nothing changed or
 * the exec failed. Call first thing in main. */
void env_tune_and_reexec(char **argv);

#endif
