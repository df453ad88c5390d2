# The bulkput image for cluster jobs (docs/scale-out.md): built from this repository, so a job
# runs the code of one commit, not whatever a package index serves on the day a pod starts.
#   docker build -t registry.example.com/bulkput:0.1.0 .
FROM python:3.12.7-slim-bookworm
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bulkput ./bulkput
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /
ENTRYPOINT ["bulkput"]
