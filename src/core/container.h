/* Going from a member back to the structure that embeds it. A derived object embeds its base as the first member
 * `super` (the HTTP connection embeds the network connection), and a request lives inside its connection; the
 * layers hand each other the inner pointer and get the outer one back with this one macro, type-checked where
 * the compiler allows, instead of casts written out at each use. */
#ifndef SC_CORE_CONTAINER_H
#define SC_CORE_CONTAINER_H

#include <stddef.h>

/* The object of type `type` whose member `member` is at ptr. The expression `&((type *)0)->member == (ptr)` is
 * never evaluated; it only makes the compiler complain when ptr does not point to that member's type. */
#define SC_CONTAINER_OF(ptr, type, member)                                                                        \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member) + 0 * sizeof(&((type *)0)->member == (ptr))))

#endif
