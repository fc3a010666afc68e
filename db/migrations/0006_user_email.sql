-- 0006_user_email: an optional e-mail address per account, to sign in with once verified and to reset a forgotten
-- password (src/api/user_email.h).
--
-- Addresses are unique regardless of case, like usernames. email_verified says whether the owner followed the
-- signed link mailed to the address; a new address starts unverified. reset_nonce_hash is the SHA-256 of the nonce
-- in the latest password-reset link: a confirmation clears it, so a link works once, and a newer link replaces
-- the older one.
ALTER TABLE users ADD COLUMN email text,
                  ADD COLUMN email_verified boolean NOT NULL DEFAULT false,
                  ADD COLUMN reset_nonce_hash text;
CREATE UNIQUE INDEX users_email_lower_idx ON users (lower(email));
