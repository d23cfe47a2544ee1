/*
 * admin.h - the daemon's UNIX admin socket, and the client side posternctl
 * uses to talk to it.
 *
 * Protocol: the client sends one JSON object on one line; the daemon
 * answers with JSON lines and closes the connection (a following trace
 * stays open until the client goes away):
 *   {"cmd":"status"}   -> {"ok":true,"version":"..","uptime":s,"pid":n,
 *                          "connections":{"smtp":n,...}}
 *   {"cmd":"trace","follow":true,"history":true,"protocol":"smtp","user":"a@b"}
 *                      -> one trace event per line (see trace_event_json);
 *                         a slow reader loses events, and is told so with
 *                         {"kind":"dropped","count":n}
 *   {"cmd":"reload"}   -> {"ok":true} after the reload handler ran
 *   {"cmd":"forget","address":"a@b"} -> {"ok":true} after the forget handler ran
 *   {"cmd":"blocks"}   -> {"ok":true,"blocks":[...]} from the blocks handler
 *                         (client addresses held back by the login throttle)
 *   anything else      -> {"ok":false,"error":"..."}
 * The socket is mode 0600 and only peers running as the daemon's user (or
 * root) are served.
 */
#ifndef POSTERN_ADMIN_H
#define POSTERN_ADMIN_H

#include <stddef.h>

#include <jansson.h>

struct config;

struct admin_handlers {
	/* Both run on the admin thread; either may be NULL (the request is
	 * then answered with an error). */
	void (*reload)(void *arg);
	void (*forget)(const char *address, void *arg);
	void *arg;
};

/* Sets the handler of "blocks" (NULL: not available); it runs on the admin
 * thread and returns a JSON array the admin socket sends and releases. */
void admin_set_blocks_handler(json_t *(*blocks)(void));

/* The socket path of CFG: server.admin_socket, or <data_dir>/admin.sock.
 * 0, or -1 with ERR when the path does not fit a UNIX socket address. */
int admin_socket_path(const struct config *cfg, char *out, size_t outlen, char *err, size_t errlen);

/*
 * Creates the socket (replacing a stale one; refusing when another daemon
 * answers on it or the path is not a socket) and starts the admin thread.
 * H is copied. 0, or -1 with a translated ERR.
 */
int admin_start(const struct config *cfg, const struct admin_handlers *h, char *err, size_t errlen);
/* Stops the thread, ends every admin connection and removes the socket. */
void admin_stop(void);

/*
 * Client side: connects to SOCKET_PATH, sends REQUEST_JSON (one line, no
 * newline needed) and calls LINE_CB for every line of the answer (without
 * the newline) until the daemon closes or LINE_CB returns nonzero.
 * 0 on success; -1 with a translated ERR when the daemon cannot be reached
 * or the exchange fails.
 */
int admin_request(const char *socket_path, const char *request_json,
		  int (*line_cb)(void *arg, const char *line), void *arg, char *err, size_t errlen);

#endif
