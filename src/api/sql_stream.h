/* SQL of the media stream endpoints. */
#ifndef SC_API_SQL_STREAM_H
#define SC_API_SQL_STREAM_H

#define SC_STMTS_STREAM(X)

#endif
