//! Where everything goes on the screen, computed from the terminal's size
//! and the timeline's rows alone, so that drawing ([`crate::ui`]) and the
//! mouse handler ([`crate::app`]) use the same numbers.

use ratatui::layout::Rect;

/// Where everything goes for a given terminal size and state.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// Time axis line.
    pub axis: Rect,
    /// Timeline rows, labels included.
    pub rows_area: Rect,
    /// Timeline rows without labels: column 0 is the window start.
    pub timeline: Rect,
    /// Bottom panel (first line is its title).
    pub panel: Rect,
    /// Status line.
    pub status: Rect,
    /// Rows drawn: (index into `App::rows`, first line y, lines).
    pub placed: Vec<(usize, u16, u16)>,
}

impl Geometry {
    /// The layout on `area` of timeline rows `row_lines` lines high each,
    /// scrolled so that row `sel_row` shows.
    pub fn new(area: Rect, row_lines: &[u16], sel_row: usize) -> Geometry {
        let w = area.width;
        let h = area.height.max(4);
        let label = if w >= 120 { 16 } else { 10 }.min(w / 3);
        let avail = h - 2;
        let needed: u16 = row_lines.iter().sum();
        let tl_h = needed.min(avail.saturating_sub(6).max(avail / 2));
        // Scroll so that the selected row is visible.
        let mut first = 0usize;
        loop {
            let end: u16 = row_lines
                .iter()
                .skip(first)
                .take((sel_row + 1).saturating_sub(first))
                .sum();
            if end <= tl_h || first >= sel_row {
                break;
            }
            first += 1;
        }
        let mut placed = Vec::new();
        let mut y = area.y + 1;
        for (k, &n) in row_lines.iter().enumerate().skip(first) {
            if y + n > area.y + 1 + tl_h {
                break;
            }
            placed.push((k, y, n));
            y += n;
        }
        Geometry {
            axis: Rect::new(area.x, area.y, w, 1),
            rows_area: Rect::new(area.x, area.y + 1, w, tl_h),
            timeline: Rect::new(area.x + label, area.y + 1, w - label, tl_h),
            panel: Rect::new(area.x, area.y + 1 + tl_h, w, avail - tl_h),
            status: Rect::new(area.x, area.y + h - 1, w, 1),
            placed,
        }
    }

    /// The row (index into `App::rows`) drawn on line `y`.
    pub fn row_at(&self, y: u16) -> Option<usize> {
        self.placed
            .iter()
            .find(|(_, ry, n)| y >= *ry && y < ry + n)
            .map(|(k, _, _)| *k)
    }
}
