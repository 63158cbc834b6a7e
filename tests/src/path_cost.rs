//! What the mail path costs on AWS (issue 11's figures): the egress's monthly price in each
//! `EgressMode` (infra/template.yaml), and the whole path's price per received message, from
//! AWS list prices (us-east-1, on demand, as of 2026-11; each constant names its page) and the
//! quantities a bench measured (DynamoDB request units counted by [`crate::pricing`], the
//! handler's duration). The inbound bench prints both tables (`infra/local/bench.sh`).

/// Hours in a month as AWS prices them (730).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// NAT gateway, per hour and per GB processed (<https://aws.amazon.com/vpc/pricing/>).
pub const NAT_GATEWAY_HOUR: f64 = 0.045;
pub const NAT_GATEWAY_GB: f64 = 0.045;
/// A public IPv4 address (an Elastic IP, attached or not), per hour
/// (<https://aws.amazon.com/vpc/pricing/>, "Public IPv4 addresses").
pub const PUBLIC_IPV4_HOUR: f64 = 0.005;
/// `t4g.nano` on demand, Linux, per hour (<https://aws.amazon.com/ec2/pricing/on-demand/>).
pub const T4G_NANO_HOUR: f64 = 0.0042;
/// gp3 storage per GB-month (<https://aws.amazon.com/ebs/pricing/>); the NAT instance's root
/// volume is 8 GB (the template's launch template).
pub const GP3_GB_MONTH: f64 = 0.08;
pub const NAT_INSTANCE_VOLUME_GB: f64 = 8.0;
/// EC2 detailed monitoring (the instance's `Monitoring: true`): 7 metrics at USD 0.30 each
/// (<https://aws.amazon.com/cloudwatch/pricing/>, "Detailed Monitoring").
pub const DETAILED_MONITORING_MONTH: f64 = 2.10;
/// One standard-resolution CloudWatch alarm (the NAT instance's recovery), per month.
pub const ALARM_MONTH: f64 = 0.10;
/// Data transfer out to the Internet, per GB (first 10 TB tier; the first 100 GB a month of the
/// account are free) (<https://aws.amazon.com/ec2/pricing/on-demand/>, "Data Transfer"). The same
/// in every mode; gateway endpoints (S3, DynamoDB) are free.
pub const TRANSFER_OUT_GB: f64 = 0.09;

/// SES receiving: per 1,000 messages and per 1,000 incoming chunks of 256 KB
/// (<https://aws.amazon.com/ses/pricing/>).
pub const SES_RECEIVED_PER_1000: f64 = 0.10;
pub const SES_CHUNK_PER_1000: f64 = 0.09;
/// S3 Standard: PUT (SES's S3 action) and GET (the inbound function) per 1,000 requests, storage
/// per GB-month (<https://aws.amazon.com/s3/pricing/>).
pub const S3_PUT_PER_1000: f64 = 0.005;
pub const S3_GET_PER_1000: f64 = 0.0004;
pub const S3_GB_MONTH: f64 = 0.023;
/// Lambda on arm64: per GB-second and per million requests (<https://aws.amazon.com/lambda/pricing/>).
pub const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
pub const LAMBDA_PER_MILLION: f64 = 0.20;
/// The inbound function's memory (the template's `InboundFunction.MemorySize`), GB.
pub const INBOUND_MEMORY_GB: f64 = 1.0;
/// Days a received message stays in the bucket (`inbound/` expires after 35 days).
pub const RAW_KEPT_DAYS: f64 = 35.0;

/// The egress modes of the template that cost something by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Two NAT gateways, two Elastic IPs (two zones).
    NatGateway,
    /// One `t4g.nano` NAT instance with one Elastic IP, its volume, monitoring and alarm.
    NatInstance,
}

impl Egress {
    pub fn name(self) -> &'static str {
        match self {
            Egress::NatGateway => "NatGateway (2 zones)",
            Egress::NatInstance => "NatInstance (t4g.nano)",
        }
    }

    /// The monthly price whatever the traffic, USD.
    pub fn fixed_month(self) -> f64 {
        match self {
            Egress::NatGateway => 2.0 * (NAT_GATEWAY_HOUR + PUBLIC_IPV4_HOUR) * HOURS_PER_MONTH,
            Egress::NatInstance => {
                (T4G_NANO_HOUR + PUBLIC_IPV4_HOUR) * HOURS_PER_MONTH
                    + GP3_GB_MONTH * NAT_INSTANCE_VOLUME_GB
                    + DETAILED_MONITORING_MONTH
                    + ALARM_MONTH
            }
        }
    }

    /// The price of each GB leaving through the NAT to the Internet, USD.
    pub fn per_gb(self) -> f64 {
        match self {
            Egress::NatGateway => NAT_GATEWAY_GB + TRANSFER_OUT_GB,
            Egress::NatInstance => TRANSFER_OUT_GB,
        }
    }
}

/// One received message's path, measured or assumed.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    /// Its size, KB (decimal).
    pub size_kb: f64,
    /// The inbound function's duration for it, seconds (billed per ms).
    pub lambda_seconds: f64,
    /// Its DynamoDB cost, USD (counted request units, [`crate::pricing`]).
    pub dynamodb_usd: f64,
}

/// One message's price by part, USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageCost {
    pub ses: f64,
    pub s3: f64,
    pub lambda: f64,
    pub dynamodb: f64,
    /// Through the NAT to the organisation's server, transfer out included.
    pub egress: f64,
}

impl MessageCost {
    pub fn total(&self) -> f64 {
        self.ses + self.s3 + self.lambda + self.dynamodb + self.egress
    }
}

/// The price of one message `m` delivered once through `egress`.
pub fn message_cost(m: Message, egress: Egress) -> MessageCost {
    let gb = m.size_kb / 1e6;
    let chunks = (m.size_kb / 256.0).ceil().max(1.0);
    MessageCost {
        ses: (SES_RECEIVED_PER_1000 + chunks * SES_CHUNK_PER_1000) / 1000.0,
        s3: (S3_PUT_PER_1000 + S3_GET_PER_1000) / 1000.0 + gb * S3_GB_MONTH * RAW_KEPT_DAYS / 30.0,
        lambda: INBOUND_MEMORY_GB * m.lambda_seconds * LAMBDA_ARM_GB_SECOND
            + LAMBDA_PER_MILLION / 1e6,
        dynamodb: m.dynamodb_usd,
        egress: gb * egress.per_gb(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_prices_add_up() {
        // 2 x (0.045 + 0.005) x 730.
        assert!((Egress::NatGateway.fixed_month() - 73.0).abs() < 1e-9);
        // (0.0042 + 0.005) x 730 + 0.64 + 2.10 + 0.10.
        assert!((Egress::NatInstance.fixed_month() - 9.556).abs() < 1e-9);
        let m = Message {
            size_kb: 300.0,
            lambda_seconds: 0.5,
            dynamodb_usd: 0.000_011,
        };
        let c = message_cost(m, Egress::NatGateway);
        // 300 KB is two 256 KB chunks.
        assert!((c.ses - (0.10 + 2.0 * 0.09) / 1000.0).abs() < 1e-12);
        assert!((c.egress - 0.0003 * 0.135).abs() < 1e-12);
        assert!(c.total() > message_cost(m, Egress::NatInstance).total());
    }
}
