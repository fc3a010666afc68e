/* SQL of the playlists endpoints. */
#ifndef SC_API_SQL_PLAYLISTS_H
#define SC_API_SQL_PLAYLISTS_H

#define SC_STMTS_PLAYLISTS(X)

#endif
