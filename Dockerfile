# syntax=docker/dockerfile:1
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/customerd ./cmd/customerd && mkdir -m 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/customerd /customerd
# ./data (the SQLite database, a generated secret) belongs to nonroot, so that
# a volume mounted there starts with that owner.
COPY --from=build --chown=65532:65532 /out/data /home/nonroot/data
WORKDIR /home/nonroot
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/customerd"]
