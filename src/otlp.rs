//! Optional export of the spans (request, operation, transaction, cache write, ALCS call) to
//! an OpenTelemetry collector over OTLP/HTTP. Built only with the `otlp` cargo feature, used
//! only when `--otlp-endpoint` is given.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The exporting provider and the tracing layer that feeds it. Keep the provider: shutting it
/// down at exit sends what is still batched.
pub fn layer<S>(
    endpoint: &str,
) -> Result<
    (
        SdkTracerProvider,
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    ),
    crate::setting::Invalid,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // The batch processor exports from a thread of its own: the blocking client suits it.
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| crate::setting::Invalid::new("otlp_endpoint", e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("cps").build())
        .build();
    let tracer = provider.tracer("cps");
    Ok((provider, tracing_opentelemetry::layer().with_tracer(tracer)))
}
