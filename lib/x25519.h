/*
 * x25519.h - the X25519 public key of a secret, made the way libsodium's
 * portable code makes it: the secret times the Ed25519 base point (a
 * fixed-base multiplication with tables), then the point's y mapped to
 * the Montgomery u = (1 + y) / (1 - y).  crypto_scalarmult_base on a CPU
 * with AVX runs the variable-base ladder instead, at twice the cost;
 * both give the same bytes.  A sealer makes one such key per stanza and
 * an opener one per identity: the cost of a small message is mostly
 * such multiplications.
 */
#ifndef SMIMP_X25519_H
#define SMIMP_X25519_H

/*
 * pk = X25519(sk, 9), as crypto_scalarmult_base(pk, sk).  The secret
 * goes only through libsodium's constant-time multiplication; the map
 * to u works on the public point.  0, or -1 as crypto_scalarmult_base
 * fails.
 */
int x25519_base(unsigned char pk[32], const unsigned char sk[32]);

#endif
