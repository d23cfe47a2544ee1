-- Addresses an authenticated user may send as besides their own address and
-- their aliases, granted by the admin (posternctl sender grant): one address
-- (local@domain) or a whole domain ("@domain"). Checked at MAIL FROM on
-- submission. Keep in step with sql/mariadb/006_sender_grants.sql.

CREATE TABLE sender_grants (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	address TEXT NOT NULL,
	created INTEGER NOT NULL,
	UNIQUE (user_id, address)
);
CREATE INDEX sender_grants_address ON sender_grants(address);
