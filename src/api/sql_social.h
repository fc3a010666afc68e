/* SQL of the social endpoints. */
#ifndef SC_API_SQL_SOCIAL_H
#define SC_API_SQL_SOCIAL_H

#define SC_STMTS_SOCIAL(X)

#endif
