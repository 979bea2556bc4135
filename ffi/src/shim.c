#include <rte_config.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include "shim.h"

int sluice_rte_errno(void) { return rte_errno; }
void sluice_set_rte_errno(int value) { rte_errno = value; }
void *sluice_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
