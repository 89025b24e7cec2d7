/*
 * notify.h - telling systemd (Type=notify) where the server is: ready
 * to serve, reloading, stopping.  The notification protocol is a
 * datagram to the socket NOTIFY_SOCKET names; without it, nothing.
 */
#ifndef SMIMPD_NOTIFY_H
#define SMIMPD_NOTIFY_H

/* Send "READY=1" and the like (lines of NAME=VALUE); errors ignored. */
void notify_state(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 with the monotonic time, as systemd asks of a reload. */
void notify_reloading(void);

#endif
