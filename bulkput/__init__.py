"""bulkput: a fast, crash-safe asyncio bulk uploader for Baidu BOS, Aliyun OSS and S3."""

__version__ = "0.1.0"
