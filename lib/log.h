/*
 * log: the daemon's one logger. stderr in the foreground, syslog (the
 * journal) otherwise. log_warn appends strerror(errno). Thread-safe as far as
 * stdio/syslog are. Also used by the tools in client/ and tests/.
 */
#ifndef MIG_LOG_H
#define MIG_LOG_H

#include <stdarg.h>

void log_init(const char *ident, int foreground, int verbose);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
