// A Node.js service instrumented with the OpenTelemetry JS SDK, as issue 15 describes it: GenAI chat spans
// with the standard attributes only, exported over OTLP to a spanledger collector.
//
//   node send_genai_spans.js proto|json <http://host:port>    (OTLP/HTTP, protobuf or JSON)
//   node send_genai_spans.js grpc <http://host:port>          (OTLP/gRPC, plaintext)
//
// Sends one trace: an invoke_agent span (rolling up its children's tokens, as agent frameworks do) over two
// chat calls. Prints {"trace_id": ...} once the exporter has delivered the spans.
'use strict';

const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { context, trace } = require('@opentelemetry/api');

const [protocol, endpoint] = process.argv.slice(2);
const exporters = {
  proto: () => new (require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter)({ url: `${endpoint}/v1/traces` }),
  json: () => new (require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter)({ url: `${endpoint}/v1/traces` }),
  grpc: () => {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
    const { credentials } = require('@grpc/grpc-js');
    return new OTLPTraceExporter({ url: endpoint, credentials: credentials.createInsecure() });
  },
};
const exporter = exporters[protocol]();
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': `node-chat-${protocol}` }),
  // One batch, flushed below: the whole trace reaches the collector in one request.
  spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 60000, maxExportBatchSize: 512 })],
});
const tracer = provider.getTracer('node-genai-app');

function chat(parent, input, cached, output) {
  const span = tracer.startSpan(
    'chat gpt-4o-mini',
    {
      kind: 2, // CLIENT
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
        'gen_ai.usage.input_tokens': input,
        'gen_ai.usage.cache_read.input_tokens': cached,
        'gen_ai.usage.output_tokens': output,
        'server.address': 'api.openai.com',
      },
    },
    parent,
  );
  span.end();
}

async function main() {
  const agent = tracer.startSpan('invoke_agent support-bot', {
    attributes: {
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.agent.name': 'support-bot',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.usage.input_tokens': 1000 + 500,
      'gen_ai.usage.output_tokens': 50 + 25,
    },
  });
  const inside = trace.setSpan(context.active(), agent);
  chat(inside, 1000, 200, 50);
  chat(inside, 500, 0, 25);
  agent.end();
  await provider.forceFlush();
  await provider.shutdown();
  process.stdout.write(JSON.stringify({ trace_id: agent.spanContext().traceId }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
