"""Chain and bridge stats (DESIGN.md §10): the third system on the platform.

Pure domain modules, tested without Kafka, HTTP or a database:
- (hex QUANTITY / DATA parsing is the platform's: `shared.hexwire`);
- `blocks`: a block header off `eth_getBlockByNumber`, with BEP-520 milliseconds;
- `performance`: block time, gas used ratio and base fee over the last N blocks;
- `agreement`: head agreement across a chain's URLs (wrong chain or far behind: reported, ignored);
- `health`: healthy / degraded / down from configured thresholds;
- `change`: whether a new reading differs enough from the last published one to publish.
"""
