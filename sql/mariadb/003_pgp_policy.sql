-- OpenPGP/S-MIME policy per domain or per user (posternctl pgp policy,
-- docs/pgp.md): NAME is a domain ("example.org") or a user's address, lower
-- case. A NULL column inherits: user, then domain, then the default (sign
-- never, encrypt never, no server-side decryption). Keep in step with
-- sql/sqlite/003_pgp_policy.sql.

CREATE TABLE pgp_policies (
	name VARCHAR(320) NOT NULL PRIMARY KEY,
	sign VARCHAR(16) NULL,
	encrypt VARCHAR(16) NULL,
	decrypt_inbound TINYINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
