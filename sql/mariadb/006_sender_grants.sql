-- Addresses an authenticated user may send as besides their own address and
-- their aliases, granted by the admin (posternctl sender grant): one address
-- (local@domain) or a whole domain ("@domain"). Checked at MAIL FROM on
-- submission. Keep in step with sql/sqlite/006_sender_grants.sql.

CREATE TABLE sender_grants (
	id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	user_id BIGINT NOT NULL,
	address VARCHAR(320) NOT NULL,
	created BIGINT NOT NULL,
	UNIQUE KEY sender_grants_user_address (user_id, address),
	KEY sender_grants_address (address),
	FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
