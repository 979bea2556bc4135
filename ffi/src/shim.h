/* Small C helpers for what bindgen cannot bind: thread-local (per-lcore)
 * variables and macros. Everything here is trivial; see shim.c. */
#ifndef SLUICE_SHIM_H
#define SLUICE_SHIM_H
#include <stdint.h>
struct rte_mbuf;

/* rte_errno is RTE_PER_LCORE(_rte_errno), a thread-local: never bind it as a static. */
int sluice_rte_errno(void);
void sluice_set_rte_errno(int value);
/* rte_pktmbuf_mtod is a macro. */
void *sluice_pktmbuf_mtod(struct rte_mbuf *m);
#endif
