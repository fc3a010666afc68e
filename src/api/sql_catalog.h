/* SQL of the catalog endpoints. */
#ifndef SC_API_SQL_CATALOG_H
#define SC_API_SQL_CATALOG_H

#define SC_STMTS_CATALOG(X)

#endif
