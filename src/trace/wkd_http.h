/*
 * wkd_http.h - Web Key Directory requests on the HTTP listener
 * (metrics_http.c hands every /.well-known/openpgpkey/ request here).
 */
#ifndef POSTERN_WKD_HTTP_H
#define POSTERN_WKD_HTTP_H

#include <stdbool.h>

#include <microhttpd.h>

/* Where published keys live (<data_dir>/gnupg/wkd); empty: WKD answers 404. */
void wkd_http_set_data_dir(const char *data_dir);
/* True for URLs under /.well-known/openpgpkey/. */
bool wkd_http_matches(const char *url);
/* Answers one WKD request (GET/HEAD; 404 for anything not published). */
enum MHD_Result wkd_http_reply(struct MHD_Connection *conn, const char *url, const char *method);

#endif
