/* Routes and handlers of the export endpoint, and the background jobs the API runs (api/export.c). */
#ifndef SC_API_ROUTES_JOBS_H
#define SC_API_ROUTES_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "core/slice.h"
#include "http/request.h"
#include "jobs/jobs.h"
#include "settings.h"

#define SC_ROUTES_JOBS(X) X(SC_M_POST, "/export/playlists/{playlistId}", sc_api_export_playlist)

/* POST /export/playlists/{playlistId} {targetEmail}: enqueues a job that e-mails the playlist as JSON. */
int sc_api_export_playlist(sc_req *req);

/* Whether s is an e-mail address we send to: a dot-atom local part (RFC 5322, no quoted strings) and a domain of
 * at least two labels whose last is alphabetic, ASCII only, 254 characters at most. Nothing that could break out
 * of a header line or an SMTP command passes. */
bool sc_api_email_valid(sc_slice s);

/* The kinds of jobs the API runs (debug-sleep only when debug is set); *n is their count. The table is static. */
const sc_job_kind *sc_api_job_kinds(bool debug, size_t *n);

/* Checks the job settings at startup: STACCATO_SCHEDULES names known scheduled jobs, and reports have an address
 * to go to. Returns 0 or -1 with a one-line message. */
int sc_api_jobs_check(const sc_settings *st, char *err, size_t errlen);

/* Starts the job runtime of this process from the settings, on app's loop, pool and outbound client. */
sc_jobs *sc_api_jobs_new(sc_app *app);

#endif
