/* An open file shared by the responses that send from it. It lives in net rather than in http because the
 * output queue of a connection (net/conn.h) holds references to the files it still has to send, and releases
 * them when the connection goes, whatever the request that queued them became meanwhile. */
#ifndef SC_NET_FILE_H
#define SC_NET_FILE_H

/* Closed when the last reference goes. A file that is replaced or deleted while it is being sent stays readable
 * through its descriptor. */
typedef struct sc_file {
    int fd;
    int refs;
} sc_file;

/* Wraps an open descriptor (owned from now on) with one reference. */
sc_file *sc_file_new(int fd);
/* Takes one more reference. */
void sc_file_ref(sc_file *f);
/* Drops a reference (NULL is ignored); the last one closes the descriptor. */
void sc_file_unref(sc_file *f);

#endif
