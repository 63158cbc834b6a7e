//! The raw message store (S3): SES receiving's S3 action writes each message under
//! `{prefix}{SES message id}` before the inbound function runs (Q1, Q6: durable before anything
//! else happens); the inbound path and the queue only read it. Locally the receiving stand-in
//! writes it, as SES would.

use crate::adapters::aws;
use crate::domain::downloads::{content_disposition, percent_encode};
use crate::ports::blob::{DownloadAs, ObjectInfo, PresignedUpload, RawMessages, UploadAs};
use crate::ports::error::BlobError;
use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

/// Raw messages in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3RawMessages {
    client: Client,
    bucket: String,
}

impl S3RawMessages {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3RawMessages {
            client,
            bucket: bucket.into(),
        }
    }

    /// A client from the shared SDK configuration, with path-style addressing (bucket names
    /// with dots, and S3 stand-ins, need it; AWS accepts it too).
    pub fn from_sdk(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        Self::new(Client::from_conf(conf), bucket)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket if it does not exist (local stacks and tests; in AWS the template owns it).
    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| classify("CreateBucket", e))?;
        // As the template's CorsConfiguration: the compose page's script PUTs uploads.
        use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
        let rule = CorsRule::builder()
            .allowed_origins("*")
            .allowed_methods("PUT")
            .allowed_headers("content-type")
            .allowed_headers("x-amz-meta-filename")
            .max_age_seconds(3000)
            .build()
            .map_err(|e| BlobError::Permanent(format!("CORS rule: {e}")))?;
        let cors = CorsConfiguration::builder()
            .cors_rules(rule)
            .build()
            .map_err(|e| BlobError::Permanent(format!("CORS: {e}")))?;
        self.client
            .put_bucket_cors()
            .bucket(&self.bucket)
            .cors_configuration(cors)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("PutBucketCors", e))
    }
}

/// Maps an SDK error onto the port's error (the reading is [`aws::classify`]).
fn classify<E, R>(op: &str, err: SdkError<E, R>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    aws::classify(op, &err).into_blob_error()
}

#[async_trait]
impl RawMessages for S3RawMessages {
    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    BlobError::NotFound(key.to_string())
                } else {
                    classify("GetObject", e)
                }
            })?;
        let bytes =
            out.body.collect().await.map_err(|e| {
                BlobError::Transient(format!("GetObject {key}: reading the body: {e}"))
            })?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn put(&self, key: &str, raw: Vec<u8>) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(raw))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("PutObject", e))
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError> {
        // The copy source is `bucket/key`, URL-encoded (SES message ids are plain, but a
        // configured prefix may not be).
        let source = percent_encode(&format!("{}/{from}", self.bucket), b"/-_.~");
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.code() == Some("NoSuchKey"))
                {
                    BlobError::NotFound(from.to_string())
                } else {
                    classify("CopyObject", e)
                }
            })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteObject", e))
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        Ok(self.head(key).await?.is_some())
    }

    async fn presign_get(&self, key: &str, how: &DownloadAs<'_>) -> Result<String, BlobError> {
        // The signature covers the bucket, the key, the expiry and these response overrides:
        // changing any of them in the URL makes S3 refuse it (SignatureDoesNotMatch), and so
        // does using it after `expires` (AccessDenied, "Request has expired").
        let config = presigning(key, how.expires)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(content_disposition(how.filename))
            .response_content_type("application/octet-stream")
            .response_cache_control("private, no-store")
            .presigned(config)
            .await
            .map_err(|e| presign_failed(key, e))?;
        Ok(req.uri().to_string())
    }

    async fn presign_put(
        &self,
        key: &str,
        how: &UploadAs<'_>,
    ) -> Result<PresignedUpload, BlobError> {
        // The SDK signs Content-Length when it is set (aws-sdk-rust#466): S3 then refuses a
        // body of any other length (SignatureDoesNotMatch), so the declared size is the size.
        // Content-Type and the name's metadata header are signed too.
        let config = presigning(key, how.expires)?;
        let length =
            i64::try_from(how.content_length).map_err(|_| presign_failed(key, "length"))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(length)
            .content_type(how.content_type)
            .metadata(crate::domain::uploads::NAME_META, how.name_meta)
            .presigned(config)
            .await
            .map_err(|e| presign_failed(key, e))?;
        Ok(PresignedUpload {
            method: "PUT",
            url: req.uri().to_string(),
            headers: req
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    async fn origin(&self) -> Result<String, BlobError> {
        // The origin of a link the SDK builds, so that it is the one links really use (the
        // region's endpoint, or the configured one locally).
        let key = crate::domain::uploads::STAGING_PREFIX;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(key, std::time::Duration::from_secs(60))?)
            .await
            .map_err(|e| presign_failed(key, e))?;
        let url = url::Url::parse(req.uri()).map_err(|e| presign_failed(key, e))?;
        Ok(url.origin().ascii_serialization())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Some(ObjectInfo {
                key: key.to_string(),
                size: o
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                content_type: o.content_type().map(str::to_string),
                metadata: o
                    .metadata()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                last_modified: o.last_modified().and_then(time_of),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(classify("HeadObject", e)),
        }
    }

    async fn list(&self, prefix: &str, max: i32) -> Result<Vec<ObjectInfo>, BlobError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(max)
            .send()
            .await
            .map_err(|e| classify("ListObjectsV2", e))?;
        Ok(out
            .contents()
            .iter()
            .map(|o| ObjectInfo {
                key: o.key().unwrap_or_default().to_string(),
                size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                content_type: None,
                metadata: vec![],
                last_modified: o.last_modified().and_then(time_of),
            })
            .collect())
    }
}

/// A presigning configuration of `expires` for `key`'s link.
fn presigning(key: &str, expires: std::time::Duration) -> Result<PresigningConfig, BlobError> {
    PresigningConfig::expires_in(expires).map_err(|e| presign_failed(key, e))
}

/// A link that could not be signed (a configuration fault: retrying does not help).
fn presign_failed(key: &str, e: impl std::fmt::Display) -> BlobError {
    BlobError::Permanent(format!("presigning {key}: {e}"))
}

/// An SDK time as chrono's.
fn time_of(t: &aws_sdk_s3::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
