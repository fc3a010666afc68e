/* Who sees which song and album, as SQL fragments for the statements of every resource.
 *
 * The rule is one: a flagged or private song, and a flagged album, is visible only to admins and its owner;
 * everything else is public. Statements take the caller as a user id (NULL for anonymous callers) and whether the
 * caller is an admin ('true'/'false', sc_api_auth_admin_flag), and treat a hidden item exactly like a missing one,
 * so that the handler answers 404 for both. The rule is spelled three ways below, each as the statements of its
 * resource have always been prepared: the text of a prepared statement is kept as it is. */
#ifndef SC_API_VISIBILITY_H
#define SC_API_VISIBILITY_H

/* Albums, songs, streams and uploads: song s / album a visible to the caller (who: user id or NULL, adm: admin
 * flag). */
#define SC_CAT_SONG_VISIBLE(who, adm)                                                                             \
    "(" adm "::boolean OR s.owner_id = " who "::text OR (NOT s.flagged AND s.visibility = 'public'))"
#define SC_CAT_ALBUM_VISIBLE(who, adm) "(" adm "::boolean OR a.owner_id = " who "::text OR NOT a.flagged)"

/* Playlists and exports: the song aliased s visible to user U, ADMIN being the caller's admin flag parameter. */
#define SC_PL_SONG_VISIBLE(U, ADMIN)                                                                              \
    "(" ADMIN "::boolean OR s.owner_id = " U " OR (s.visibility = 'public' AND NOT s.flagged))"

/* Likes and ratings: album a (by alias) visible to user $2, admin $3; song s visible to user u, admin a. */
#define SC_SOCIAL_ALBUM_VISIBLE(a) "(NOT " a ".flagged OR " a ".owner_id = $2 OR $3::bool)"
#define SC_SOCIAL_SONG_VISIBLE(s, u, a)                                                                           \
    "((NOT " s ".flagged AND " s ".visibility = 'public') OR " s ".owner_id = " u " OR " a "::bool)"

#endif
