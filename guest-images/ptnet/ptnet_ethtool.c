// SPDX-License-Identifier: GPL-2.0
/*
 * ptnet.ko — ethtool: driver info, ring sizes, and per-ring counters (ethtool -S, or
 * `ptnet-ctl stats IFNAME` where there is no ethtool): for TX rings kicks, irqs, stops and
 * wakes of the stack's queue, GSO (TSO) frames sent whole and frames with checksum offload; for
 * RX rings kicks, irqs, NAPI polls, frames to the stack, GSO frames received whole and frames
 * reassembled from several slots. Kicks and interrupts count in netmap mode too; the offload
 * counters stay 0 without the virtio-net header.
 */
#include <linux/ethtool.h>

#include "ptnet_priv.h"

static const char * const ptnet_tx_stat_names[] = {
	"kicks", "irqs", "stops", "wakes", "gso", "csum"
};
static const char * const ptnet_rx_stat_names[] = {
	"kicks", "irqs", "polls", "packets", "gso", "chains"
};
#define PTNET_STATS_PER_RING 6

static void ptnet_get_drvinfo(struct net_device *dev, struct ethtool_drvinfo *info)
{
	struct ptnet_info *pi = netdev_priv(dev);

	strscpy(info->driver, DRV_NAME, sizeof(info->driver));
	strscpy(info->bus_info, pci_name(pi->pdev), sizeof(info->bus_info));
}

static void ptnet_get_ringparam(struct net_device *dev, struct ethtool_ringparam *ring,
				struct kernel_ethtool_ringparam *kring,
				struct netlink_ext_ack *extack)
{
	struct ptnet_info *pi = netdev_priv(dev);

	ring->rx_max_pending = ring->rx_pending = pi->rx_slots;
	ring->tx_max_pending = ring->tx_pending = pi->tx_slots;
}

static void ptnet_get_channels(struct net_device *dev, struct ethtool_channels *ch)
{
	struct ptnet_info *pi = netdev_priv(dev);

	ch->max_rx = ch->rx_count = pi->nrx;
	ch->max_tx = ch->tx_count = pi->ntx;
}

static_assert(ARRAY_SIZE(ptnet_tx_stat_names) == PTNET_STATS_PER_RING);
static_assert(ARRAY_SIZE(ptnet_rx_stat_names) == PTNET_STATS_PER_RING);

static int ptnet_get_sset_count(struct net_device *dev, int sset)
{
	struct ptnet_info *pi = netdev_priv(dev);

	if (sset != ETH_SS_STATS)
		return -EOPNOTSUPP;
	return (pi->ntx + pi->nrx) * PTNET_STATS_PER_RING;
}

static void ptnet_get_strings(struct net_device *dev, u32 sset, u8 *data)
{
	struct ptnet_info *pi = netdev_priv(dev);
	unsigned int i, j;

	if (sset != ETH_SS_STATS)
		return;
	for (i = 0; i < pi->ntx + pi->nrx; i++) {
		struct ptnet_queue *q = &pi->queues[i];
		const char * const *names = q->rx ? ptnet_rx_stat_names : ptnet_tx_stat_names;

		for (j = 0; j < PTNET_STATS_PER_RING; j++)
			ethtool_sprintf(&data, "%s%u_%s", q->rx ? "rx" : "tx", q->qidx, names[j]);
	}
}

static void ptnet_get_ethtool_stats(struct net_device *dev, struct ethtool_stats *stats,
				    u64 *data)
{
	struct ptnet_info *pi = netdev_priv(dev);
	unsigned int i;

	for (i = 0; i < pi->ntx + pi->nrx; i++) {
		struct ptnet_queue *q = &pi->queues[i];

		*data++ = READ_ONCE(q->kicks);
		*data++ = READ_ONCE(q->irqs);
		*data++ = q->rx ? READ_ONCE(q->polls) : READ_ONCE(q->stops);
		*data++ = q->rx ? READ_ONCE(q->packets) : READ_ONCE(q->wakes);
		*data++ = READ_ONCE(q->gso);
		*data++ = q->rx ? READ_ONCE(q->chains) : READ_ONCE(q->csum);
	}
}

const struct ethtool_ops ptnet_ethtool_ops = {
	.get_drvinfo = ptnet_get_drvinfo,
	.get_link = ethtool_op_get_link,
	.get_ringparam = ptnet_get_ringparam,
	.get_channels = ptnet_get_channels,
	.get_sset_count = ptnet_get_sset_count,
	.get_strings = ptnet_get_strings,
	.get_ethtool_stats = ptnet_get_ethtool_stats,
};
