#!/bin/sh
# make_certs.sh DIR: a throwaway PKI for the TLS specs, made fresh on every run
# (nothing secret is kept in the repository). EC P-256 keys keep it quick.
#   ca.pem                 the test CA (the specs trust it through cafile)
#   server.pem/.key        localhost, 127.0.0.1 and ::1, signed by the CA
#   expired.pem/.key       the same names, valid only in 2020
#   wronghost.pem/.key     wrong.example only
#   selfsigned.pem/.key    localhost and 127.0.0.1, signed by itself
#   untrusted.pem/.key     localhost and 127.0.0.1, signed by another CA
#   client.pem/.key        a client certificate signed by the CA
#   client-enc.key         client.key encrypted with the password "secret"
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # ca NAME SUBJECT
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "$2" -days 30 -out "$1.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

# openssl ca signs with arbitrary dates (x509 -req cannot set a start date)
cat >ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
CNF

sign() { # sign NAME CA SAN EKU [startdate enddate]
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$1" -addext "subjectAltName=$3" \
        -addext "extendedKeyUsage=$4" -out "$1.csr" 2>/dev/null
    : >index.txt
    [ -f serial ] || echo 1000 >serial
    if [ $# -ge 6 ]; then dates="-startdate $5 -enddate $6"; else dates="-days 30"; fi
    # shellcheck disable=SC2086
    openssl ca -batch -config ca.cnf -cert "$2.pem" -keyfile "$2.key" $dates \
        -in "$1.csr" -out "$1.pem" -notext 2>/dev/null
}

ca ca "/CN=lurl test CA"
ca otherca "/CN=lurl other CA"
names="DNS:localhost,IP:127.0.0.1,IP:::1"
sign server ca "$names" serverAuth
sign expired ca "$names" serverAuth 20200101000000Z 20200201000000Z
sign wronghost ca "DNS:wrong.example" serverAuth
sign untrusted otherca "$names" serverAuth
sign client ca "DNS:client" clientAuth
key selfsigned.key
openssl req -x509 -new -key selfsigned.key -subj "/CN=localhost" -days 30 \
    -addext "subjectAltName=$names" -out selfsigned.pem
openssl pkey -in client.key -aes256 -passout pass:secret -out client-enc.key
rm -f ./*.csr ca.cnf index.txt* serial* ./[0-9A-F]*.pem
