#!/bin/sh
# make-homes.sh DIR - GnuPG homes and certificates for tests/unit/test_pgp_mime.c,
# made with the gpg, gpgsm and openssl command-line tools (independent peers):
#   DIR/alice   OpenPGP: Alice's secret key (ed25519 + cv25519), Bob's public key
#   DIR/bob     OpenPGP: Bob's secret key, Alice's public key
#   DIR/peer    OpenPGP: Alice's and Bob's public keys only (a correspondent)
#   DIR/empty   OpenPGP: no keys
#   DIR/old     OpenPGP: Olga's key, made in 2020 and expired after a day, and a
#               detached signature old.sig of old.txt made while it was valid
#   DIR/carol   S/MIME: Carol's certificate and key (test CA trusted), Dave's certificate
#   DIR/dave    S/MIME: Dave's certificate and key, Carol's certificate
#   DIR/ca.pem, carol.pem, carol.key, dave.pem, dave.key, expired.pem, expired.key
# No passphrases: the homes stand for unlocked users.
set -eu
D=$1
mkdir -p "$D"
cd "$D"
Q="--batch --quiet --no-tty --pinentry-mode loopback --passphrase="

for u in alice bob peer empty old; do
	mkdir -m 700 "$u"
	echo "trust-model always" > "$u/gpg.conf"
	echo "allow-loopback-pinentry" > "$u/gpg-agent.conf"
done
gen() { # home name address
	gpg --homedir "$1" $Q --quick-gen-key "$2 <$3>" ed25519 sign 2y
	fpr=$(gpg --homedir "$1" --with-colons --list-keys "$3" | awk -F: '/^fpr/ {print $10; exit}')
	gpg --homedir "$1" $Q --quick-add-key "$fpr" cv25519 encr 2y
}
gen alice Alice alice@example.org
gen bob Bob bob@example.org
gpg --homedir alice --export alice@example.org > alice.pub
gpg --homedir bob --export bob@example.org > bob.pub
gpg --homedir alice $Q --import bob.pub
gpg --homedir bob $Q --import alice.pub
gpg --homedir peer $Q --import alice.pub bob.pub

gpg --homedir old $Q --faked-system-time 20200101T000000 \
	--quick-gen-key "Olga <olga@example.org>" ed25519 sign 1d
printf 'old text\r\n' > old.txt
gpg --homedir old $Q --faked-system-time 20200101T010000 --detach-sign --armor \
	-o old.sig old.txt
gpg --homedir old --export olga@example.org > olga.pub
gpg --homedir peer $Q --import olga.pub

# S/MIME: a test CA and RSA certificates (gpgsm 2.2 encrypts to RSA only).
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
	-subj "/CN=Postern Test CA" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() { # name address [openssl x509 date options]
	n=$1; a=$2; shift 2
	printf 'subjectAltName=email:%s\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nbasicConstraints=CA:FALSE\n' "$a" > "$n.ext"
	openssl req -newkey rsa:2048 -nodes -keyout "$n.key" -out "$n.csr" \
		-subj "/CN=$n/emailAddress=$a" 2>/dev/null
	openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out "$n.pem" -extfile "$n.ext" "$@" 2>/dev/null
}
issue carol carol@example.org -days 365
issue dave dave@example.org -days 365
# Expired: valid for one second, then wait it out.
issue expired expired@example.org -days 0 2>/dev/null || true
ca_fpr=$(openssl x509 -in ca.pem -noout -fingerprint -sha1 | sed 's/.*=//')
for u in carol dave; do
	mkdir -m 700 "$u"
	printf 'disable-crl-checks\ndisable-dirmngr\n' > "$u/gpgsm.conf"
	echo "allow-loopback-pinentry" > "$u/gpg-agent.conf"
	echo "$ca_fpr S relax" > "$u/trustlist.txt"
	gpgsm --homedir "$u" --batch --quiet --import ca.pem carol.pem dave.pem 2>/dev/null
	# gpgsm 2.2 reads only the legacy PKCS#12 ciphers. No passphrase: GPGME has
	# no passphrase callback for CMS.
	openssl pkcs12 -export -legacy -in "$u.pem" -inkey "$u.key" -out "$u.p12" -passout pass:
	gpgsm --homedir "$u" --batch --quiet --pinentry-mode loopback --passphrase-fd 0 \
		--import "$u.p12" < /dev/null 2>/dev/null
done
