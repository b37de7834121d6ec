# Sourced by the bench scripts: the fake OpenAI upstream they all measure against (nginx answering one fixed
# chat completion) and nginx settings they share.

COMPLETION='{"id":"chatcmpl-bench0000000000000000000000","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_bench"}'

# Shared nginx settings: everything under the instance's prefix, no access log, long-lived keep-alive
# (nginx's default keepalive_requests of 1000 would make wrk and the proxies reconnect every 1000 requests).
nginx_common() {
    local dir=$1
    cat <<CONF
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
CONF
}
nginx_http_common() {
    local dir=$1
    cat <<CONF
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
CONF
}

# Writes the fake upstream's config for nginx prefix DIR listening on PORT (one worker process).
fake_upstream_conf() {
    local dir=$1 port=$2
    {
        nginx_common "$dir"
        echo "worker_processes 1;"
        echo "http {"
        nginx_http_common "$dir"
        cat <<CONF
    server {
        listen 127.0.0.1:$port backlog=4096;
        location = /v1/chat/completions {
            default_type application/json;
            return 200 '$COMPLETION';
        }
        location / { return 404; }
    }
}
CONF
    } >"$dir/nginx.conf"
}
