/* The DPDK API surface Sluice binds. Keep it to what the layers above use. */
#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_version.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_flow.h>
#include <rte_meter.h>
#include <rte_mtr.h>
#include <rte_rcu_qsbr.h>
#include "src/shim.h"
