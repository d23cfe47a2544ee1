/*
 * protocols.h - the one place posternd learns which protocols exist.
 */
#ifndef POSTERN_PROTOCOLS_H
#define POSTERN_PROTOCOLS_H

/* Registers every protocol built into posternd with net (net_register_protocol). */
void protocols_register_all(void);

#endif
