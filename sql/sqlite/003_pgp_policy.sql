-- OpenPGP/S-MIME policy per domain or per user (posternctl pgp policy,
-- docs/pgp.md): NAME is a domain ("example.org") or a user's address, lower
-- case. A NULL column inherits: user, then domain, then the default (sign
-- never, encrypt never, no server-side decryption). Keep in step with
-- sql/mariadb/003_pgp_policy.sql.

CREATE TABLE pgp_policies (
	name TEXT NOT NULL PRIMARY KEY,
	sign TEXT,
	encrypt TEXT,
	decrypt_inbound INTEGER
);
