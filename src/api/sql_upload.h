/* SQL of the media upload endpoints. */
#ifndef SC_API_SQL_UPLOAD_H
#define SC_API_SQL_UPLOAD_H

#define SC_STMTS_UPLOAD(X)

#endif
