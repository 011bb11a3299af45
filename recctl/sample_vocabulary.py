"""The simulator's vocabulary: the words :mod:`recctl.sample` writes and the shares it draws them with.

Industries, compliance frameworks, workload types, service names, titles, benefits, risks and
agent names, with the odds and weights that tie them together (an industry's priorities and
frameworks, a company size's budget). The valid values of record fields (categories, providers,
levels, company sizes) are the records' own (:mod:`recctl.records`); the tables here that
follow one of them say so and keep its order.
"""

from __future__ import annotations

import numpy as np

from recctl.records import CLOUD_PROVIDERS

#: How often each category is recommended (USUAL_CATEGORIES order).
CATEGORY_SHARES = (0.18, 0.16, 0.14, 0.10, 0.12, 0.10, 0.10, 0.10)
#: Positions in USUAL_CATEGORIES.
COST, SECURITY, PERFORMANCE, SCALABILITY, RELIABILITY, COMPLIANCE, ARCHITECTURE, MONITORING = range(8)
#: How common each company size is, and its median monthly budget (COMPANY_SIZES order).
COMPANY_SIZE_SHARES = (0.22, 0.26, 0.24, 0.16, 0.12)
MEDIAN_BUDGET_BY_SIZE = (4_000.0, 15_000.0, 60_000.0, 250_000.0, 1_000_000.0)
#: Utility lost per effort level (low=0, medium=1, high=2): small companies dislike high effort.
EFFORT_AVERSION_BY_SIZE = (0.50, 0.38, 0.15, 0.0, -0.05)
INDUSTRIES = (
    "fintech",
    "healthcare",
    "retail",
    "saas",
    "manufacturing",
    "media",
    "education",
    "government",
    "logistics",
    "gaming",
)
#: Extra priority weight per industry, columns in PRIORITY_CATEGORIES order.
INDUSTRY_PRIORITY_TILT = np.array(
    [
        [0.0, 0.30, 0.0, 0.0, 0.15, 0.30],  # fintech
        [0.0, 0.25, 0.0, 0.0, 0.10, 0.40],  # healthcare
        [0.20, 0.0, 0.15, 0.20, 0.0, 0.0],  # retail
        [0.10, 0.10, 0.15, 0.25, 0.10, 0.0],  # saas
        [0.25, 0.0, 0.0, 0.0, 0.20, 0.0],  # manufacturing
        [0.15, 0.0, 0.30, 0.20, 0.0, 0.0],  # media
        [0.30, 0.10, 0.0, 0.0, 0.0, 0.10],  # education
        [0.0, 0.30, 0.0, 0.0, 0.10, 0.35],  # government
        [0.20, 0.0, 0.10, 0.10, 0.25, 0.0],  # logistics
        [0.0, 0.0, 0.35, 0.25, 0.10, 0.0],  # gaming
    ]
)
FRAMEWORKS = ("SOC2", "HIPAA", "PCI-DSS", "GDPR", "ISO27001")
#: Probability that an assessment of each industry requires each framework (FRAMEWORKS order).
INDUSTRY_FRAMEWORK_ODDS = np.array(
    [
        [0.70, 0.02, 0.85, 0.40, 0.30],  # fintech
        [0.40, 0.90, 0.10, 0.30, 0.20],  # healthcare
        [0.20, 0.0, 0.75, 0.40, 0.10],  # retail
        [0.70, 0.10, 0.15, 0.45, 0.25],  # saas
        [0.15, 0.0, 0.05, 0.20, 0.45],  # manufacturing
        [0.20, 0.0, 0.20, 0.40, 0.05],  # media
        [0.15, 0.05, 0.05, 0.35, 0.05],  # education
        [0.30, 0.10, 0.05, 0.30, 0.50],  # government
        [0.20, 0.0, 0.10, 0.25, 0.35],  # logistics
        [0.10, 0.0, 0.30, 0.40, 0.05],  # gaming
    ]
)
#: The providers an assessment runs on (``cloud_providers``): the first three of the
#: recommendations' CLOUD_PROVIDERS, in their order.
PRIMARY_PROVIDERS = CLOUD_PROVIDERS[:3]
PRIMARY_PROVIDER_SHARES = (0.50, 0.28, 0.22)
#: How a description names each recommendation provider (CLOUD_PROVIDERS order).
PROVIDER_PHRASES = ("AWS", "Azure", "Google Cloud", "every cloud", "third-party services")
WORKLOAD_TYPES = (
    "web_applications",
    "apis",
    "batch_processing",
    "data_analytics",
    "machine_learning",
    "streaming",
    "databases",
    "microservices",
)

#: Service names by recommendation provider (CLOUD_PROVIDERS order), 8 each.
SERVICES = (
    ("EC2", "S3", "RDS", "Lambda", "CloudWatch", "IAM", "KMS", "EKS"),
    (
        "Virtual Machines",
        "Blob Storage",
        "SQL Database",
        "Functions",
        "Monitor",
        "Entra ID",
        "Key Vault",
        "AKS",
    ),
    (
        "Compute Engine",
        "Cloud Storage",
        "Cloud SQL",
        "Cloud Run",
        "Cloud Monitoring",
        "IAM",
        "Cloud KMS",
        "GKE",
    ),
    ("Kubernetes", "Terraform", "Prometheus", "Grafana", "Vault", "Istio", "ArgoCD", "OpenTelemetry"),
    ("Cloudflare", "Datadog", "Snowflake", "MongoDB Atlas", "Okta", "PagerDuty", "Fastly", "Splunk"),
)
#: Title per category (USUAL_CATEGORIES order), 4 variants each.
TITLES = (
    (
        "Right-size compute instances",
        "Buy reserved capacity",
        "Move cold data to archive storage",
        "Shut down idle environments",
    ),
    (
        "Enforce least-privilege IAM",
        "Encrypt data at rest",
        "Enable threat detection",
        "Rotate secrets automatically",
    ),
    (
        "Add a caching layer",
        "Tune database indexes",
        "Put static assets on a CDN",
        "Profile hot request paths",
    ),
    (
        "Enable autoscaling",
        "Adopt managed Kubernetes",
        "Partition the main database",
        "Queue background work",
    ),
    (
        "Deploy across availability zones",
        "Automate backups and restores",
        "Add health checks and failover",
        "Run chaos experiments",
    ),
    (
        "Centralise audit logging",
        "Map controls to the framework",
        "Automate evidence collection",
        "Classify sensitive data",
    ),
    (
        "Split the monolith into services",
        "Adopt infrastructure as code",
        "Standardise landing zones",
        "Introduce an event bus",
    ),
    (
        "Set up SLO dashboards",
        "Add distributed tracing",
        "Alert on error budgets",
        "Consolidate log pipelines",
    ),
)
#: Benefit phrases per category (USUAL_CATEGORIES order), 4 each.
BENEFITS = (
    ("lower monthly bill", "predictable spend", "less waste", "better unit economics"),
    (
        "smaller attack surface",
        "faster incident response",
        "protected customer data",
        "fewer credentials leaked",
    ),
    ("lower latency", "higher throughput", "better user experience", "fewer timeouts"),
    ("handles traffic spikes", "elastic capacity", "room to grow", "less manual scaling"),
    ("higher uptime", "faster recovery", "fewer outages", "tested disaster recovery"),
    ("audit readiness", "fewer compliance findings", "clear control ownership", "lower regulatory risk"),
    ("faster delivery", "cleaner boundaries", "repeatable environments", "less coupling"),
    ("faster detection", "clear service health", "fewer pager alerts", "shorter outages"),
)
RISKS = (
    "migration downtime",
    "team learning curve",
    "temporary cost increase",
    "configuration drift",
    "vendor lock-in",
    "performance regression",
)
AGENT_BY_CATEGORY = (
    "cost_optimization_agent",
    "security_agent",
    "performance_agent",
    "cloud_engineer_agent",
    "infrastructure_agent",
    "compliance_agent",
    "cto_agent",
    "mlops_agent",
)
#: How much more often the old system's agents marked each category critical (USUAL_CATEGORIES order).
CATEGORY_SEVERITY = (0.0, 0.8, 0.1, 0.0, 0.4, 0.6, -0.2, -0.3)
